"""API-only tests of the real tier, run again here against the in-process cloud: the
same assertions hold whichever agent sits underneath, in a fraction of the time."""

from test_api_errors import *  # noqa: F403
from test_describe import (  # noqa: F401
    test_filters,
    test_images_regions_zones_types_attributes,
    test_instance_status_and_attributes,
    test_paging_returns_each_instance_once,
    test_tags_lifecycle,
)
from test_front_door import *  # noqa: F403
