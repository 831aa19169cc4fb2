from flask_smorest import Blueprint

blp = Blueprint("usuarios", __name__, url_prefix="/api", description="usuarios")
