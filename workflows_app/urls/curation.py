app_name = "curation"
urlpatterns: list = []
