"""`gureum deploy`: an app folder becomes a release image and a rolling Auto Scaling group
behind the shared load balancer, built only from ordinary resources of the account.

spec.py     what the app is (gureum.toml, or detected from the folder)
release.py  the release image: the app and its dependencies over the standard image
resources.py the cloud side, through the AWS APIs (security groups, target group, the
            shared ALB and its host rule, launch template, Auto Scaling group)
rollout.py  waiting for instances, health and refreshes, with live progress
commands.py the `gureum deploy/apps/releases/rollback/destroy/scale/env` commands
"""


class DeployError(Exception):
    """A clear message for the user; the command exits non-zero with it, no traceback."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail  # e.g. the app's own output
