"""Training jobs: detached `tunestudio train` processes in a queue, one at a time per device."""
