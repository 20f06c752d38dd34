"""An example third-party dsrs provider: the Acme chat wire over HTTP (see docs/writing-a-provider.md)."""
