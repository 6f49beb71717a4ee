from paystream.cli import run

run()
