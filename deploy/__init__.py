"""Deployment: the AWS SAM template generated from the worker registry (make template)."""
