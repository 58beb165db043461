import pytest
from django.contrib.auth.models import Group

from clinic import services
from clinic.choices import MembershipRole
from clinic.models import Membership
from clinic.roles import ROLE_GROUPS, ROLE_PERMISSIONS
from tests.clinic.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_migration_created_a_group_per_role_with_its_permissions():
    for role, name in ROLE_GROUPS.items():
        group = Group.objects.get(name=name)
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert granted == ROLE_PERMISSIONS[role]


def test_a_receptionist_may_register_patients_but_not_delete_them(receptionist_a):
    assert receptionist_a.has_perm("clinic.add_patient")
    assert not receptionist_a.has_perm("clinic.delete_patient")
    assert not receptionist_a.has_perm("clinic.change_clinic")


def test_only_a_clinic_admin_manages_memberships(manager_a, admin_a):
    assert not manager_a.has_perm("clinic.change_membership")
    assert admin_a.has_perm("clinic.change_membership")


def test_a_membership_makes_a_staff_user_and_removing_it_undoes_that(clinic_a):
    user = UserFactory()
    assert not user.is_staff
    membership = services.membership_save(
        membership=Membership(user=user, clinic=clinic_a, role=MembershipRole.RECEPTIONIST)
    )
    user.refresh_from_db()
    assert user.is_staff
    assert list(user.groups.values_list("name", flat=True)) == ["Recepção"]

    services.membership_delete(membership=membership)
    user.refresh_from_db()
    assert not user.is_staff
    assert user.groups.count() == 0


def test_changing_a_role_changes_the_group(receptionist_a):
    membership = Membership.objects.get(user=receptionist_a)
    membership.role = MembershipRole.MANAGER
    services.membership_save(membership=membership)
    assert list(receptionist_a.groups.values_list("name", flat=True)) == ["Gerência"]


def test_an_inactive_membership_grants_nothing(receptionist_a):
    membership = Membership.objects.get(user=receptionist_a)
    membership.is_active = False
    services.membership_save(membership=membership)
    receptionist_a.refresh_from_db()
    assert not receptionist_a.is_staff
    assert receptionist_a.groups.count() == 0


def test_a_migrate_restores_the_role_groups_in_one_pass_not_one_per_app(monkeypatch):
    """post_migrate is sent once per app: syncing on each cost ~20 s per migrate (and per
    flush between transactional tests) for the same result."""
    from django.core.management.sql import emit_post_migrate_signal

    from clinic import roles

    receptionists = Group.objects.get(name=ROLE_GROUPS[MembershipRole.RECEPTIONIST])
    receptionists.permissions.clear()
    calls = []
    sync = roles.role_groups_sync
    monkeypatch.setattr(roles, "role_groups_sync", lambda **kw: calls.append(1) or sync(**kw))

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")

    assert len(calls) == 1
    granted = {f"{p.content_type.app_label}.{p.codename}" for p in receptionists.permissions.all()}
    assert granted == ROLE_PERMISSIONS[MembershipRole.RECEPTIONIST]
