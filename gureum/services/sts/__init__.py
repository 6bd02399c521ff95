"""AWS STS: who is calling (GetCallerIdentity), for tools that ask before anything else."""
