"""Stream machinery: Kinesis batching, the KCL processor runtime, Lambda batches, a poller."""
