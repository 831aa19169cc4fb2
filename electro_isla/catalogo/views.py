from flask_smorest import Blueprint

blp = Blueprint("catalogo", __name__, url_prefix="/api", description="catalogo")
