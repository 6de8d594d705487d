from runtime.cliargs import service_main
from worker.main import setup

service_main("worker", setup)
