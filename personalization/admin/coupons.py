"""Admin screens for coupon campaigns and coupons."""
