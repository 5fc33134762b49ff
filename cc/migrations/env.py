from services.migration_env import run
from cc.models import Base

run(Base.metadata)
