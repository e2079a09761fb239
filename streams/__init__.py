"""Stream machinery: Kinesis batching, the KCL record-processor runtime, Lambda batches, a local poller."""
