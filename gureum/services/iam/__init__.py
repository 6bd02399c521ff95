"""IAM, as far as tools need it today: GetUser of the caller."""
