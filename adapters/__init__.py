"""Implementations of the domain ports: aws/ (boto3), http/ (service contracts), memory (fakes), avro."""
