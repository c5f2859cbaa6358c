"""The data plane: answers invocations from an in-memory DeploymentPlan.

Nothing here touches the database, the services or SQLAlchemy: the plan arrives through the
``PlanSource`` port and models through the ``ArtifactStore`` interface.
"""
