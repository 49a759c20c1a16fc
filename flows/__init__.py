"""The export pipeline and its orchestration: the plain export, Prefect tasks and flows."""
