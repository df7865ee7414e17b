"""Routes of the people pages (/people/): helpdesk and admins; role changes for admins only."""

from django.urls import path

from workflows_app.views import people

app_name = "people"
urlpatterns = [
    path("", people.people_list, name="list"),
    path("<int:person_id>/", people.person_detail, name="detail"),
    path("<int:person_id>/role/", people.change_role, name="role"),
    path("<int:person_id>/upn/", people.change_upn, name="upn"),
    path("<int:person_id>/devices/", people.assign_device, name="assign"),
    path("<int:person_id>/devices/remove/", people.remove_device, name="unassign"),
]
