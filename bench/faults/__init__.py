"""`make faults`: a chaos round on the background path and a RabbitMQ restart (see README)."""
