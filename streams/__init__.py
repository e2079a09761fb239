"""Stream machinery: the KCL processor runtime, Lambda batches, a poller (the Kinesis limits and
the PutRecords splitter live beside the Kinesis adapter, adapters/aws/kinesis_limits.py)."""
