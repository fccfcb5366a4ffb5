"""The I/O shell around the core: Kafka in and out, checkpoints, HTTP, metrics, lifecycle."""
