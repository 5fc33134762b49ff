"""Pydantic models for every body that crosses a service border."""
