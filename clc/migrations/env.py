from clc.models import Base
from services.migration_env import run

run(Base.metadata)
