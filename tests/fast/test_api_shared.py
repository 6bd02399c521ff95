"""API-only tests of the real tier, run again here against the in-process cloud: the
same assertions hold whichever agent sits underneath, in a fraction of the time.
(Fixtures they need are imported with them.)"""

from test_addresses import test_address_errors_and_limits  # noqa: F401
from test_api_errors import *  # noqa: F403
from test_boot_config import (  # noqa: F401
    test_user_data_attribute_can_change_while_stopped,
    test_user_data_limit,
)
from test_describe import (  # noqa: F401
    test_filters,
    test_images_regions_zones_types_attributes,
    test_instance_status_and_attributes,
    test_paging_returns_each_instance_once,
    test_tags_lifecycle,
)
from test_front_door import *  # noqa: F403
from test_instance_attributes import *  # noqa: F403
from test_instances import (  # noqa: F401
    test_client_token_makes_run_instances_idempotent,
    test_many_in_one_call_get_distinct_addresses,
    test_user_data_round_trips_through_describe_attribute,
)
from test_security_groups import group, test_default_group_and_api_errors  # noqa: F401
from test_tags_resources import *  # noqa: F403
from test_vpcs import (  # noqa: F401
    networks,
    tenant,
    test_gateway_and_route_table_api_errors,
    test_vpc_and_subnet_api_errors,
)
