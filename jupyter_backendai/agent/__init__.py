"""The agent: one per host; dials the manager, runs kernels in a runtime, keeps warm pools."""
