from aggregator.shell.main import setup
from runtime.cliargs import service_main

service_main("aggregator", setup)
