"""admin-sell-prices: markups and fixed sell prices per plan or customer, versioned."""

from shared.admin.auth import require_admin
from shared.billing import sell_prices
from shared.http import function

app, handler = function(__name__, auth=require_admin, GET=sell_prices.get, POST=sell_prices.create)
