"""admin-models: the price book: models, their cost prices (versioned) and retirement."""

from shared.admin.auth import require_admin
from shared.billing import price_book
from shared.http import function

app, handler = function(
    __name__,
    auth=require_admin,
    GET=price_book.get,
    POST=price_book.create,
    PATCH=price_book.update,
    DELETE=price_book.retire,
)
