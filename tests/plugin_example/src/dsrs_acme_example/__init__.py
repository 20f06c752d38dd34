"""An example third-party dsrs provider package."""
