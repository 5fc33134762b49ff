from services.migration_env import run
from sc.models import Base

run(Base.metadata)
