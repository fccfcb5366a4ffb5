"""Pictures of drift: one HTML page per run (``driftline report``) or live from the service
(``GET /v1/report/<model_id>/<model_version>``).

- :mod:`.history`: statistics per closed window and alert episodes, bounded in memory;
- :mod:`.model`: the report as plain data, from the pipeline's view and that history;
- :mod:`.html`: the self-contained page (plotly.js inline);
- :mod:`.offline`: a report of a JSONL file of events.
"""
