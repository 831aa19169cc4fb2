from flask_smorest import Blueprint

blp = Blueprint("cache", __name__, url_prefix="/api", description="cache")
