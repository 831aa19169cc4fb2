from flask_smorest import Blueprint

blp = Blueprint("pedidos", __name__, url_prefix="/api", description="pedidos")
