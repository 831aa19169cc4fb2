"""Extension instances, created unbound; the app factory (electro_isla/__init__.py) binds them."""

from flask_caching import Cache
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from electro_isla.database import Base, Session
from electro_isla.envelope import JsonApi

db = SQLAlchemy(model_class=Base, session_options={"class_": Session})
migrate = Migrate()
cache = Cache()
api = JsonApi()
jwt = JWTManager()
