"""Protobuf schemas and google.api.http path templates for IDL routes."""
