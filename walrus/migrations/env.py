from services.migration_env import run
from walrus.models import Base

run(Base.metadata)
