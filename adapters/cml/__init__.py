"""CML adapters: the simulated CML (default) and the REST client for real CML 2.x controllers."""
