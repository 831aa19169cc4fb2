from flask_smorest import Blueprint

blp = Blueprint("auth", __name__, url_prefix="/api", description="auth")
