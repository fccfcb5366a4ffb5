"""The Alertmanager bridge: driftline's alerts topic -> Alertmanager's API v2.

``settings`` (config key ``alertmanager``), ``payload`` (alert event -> Alertmanager alert,
pure), ``delivery`` (what each Alertmanager has accepted, pure) and ``bridge`` (the Kafka
and HTTP loop of ``driftline alertmanager-bridge``).
"""
