from services.migration_env import run
from nc.models import Base

run(Base.metadata)
