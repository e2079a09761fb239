"""Implementations of the domain ports: aws/ (boto3), http/ (services), memory (fakes), avro."""
