"""The reliability suite (issue 15): kill -9, many writers, tenant isolation, LLM faults."""
