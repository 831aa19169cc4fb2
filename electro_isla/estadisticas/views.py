from flask_smorest import Blueprint

blp = Blueprint("estadisticas", __name__, url_prefix="/api", description="estadisticas")
