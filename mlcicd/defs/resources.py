"""Resources bound once for the whole code location (the embedded default: local files, local MLflow)."""

import dagster as dg

from mlcicd.resources import MlflowTracking, ProjectIOManager, ProjectResource


@dg.definitions
def resources() -> dg.Definitions:
    project = ProjectResource()
    return dg.Definitions(
        # runs started by automation use this too: the graph is a chain, so more processes would only add start-up time
        executor=dg.in_process_executor,
        resources={
            "project": project,
            "mlflow": MlflowTracking(project=project),
            "io_manager": ProjectIOManager(project=project),
        }
    )
