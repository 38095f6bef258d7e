"""The download worker that runs in each Job pod: ``python -m gallery_operator.worker``."""
