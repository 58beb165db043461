"""The clinical record's staff pages (in the admin site, routed by ``EncounterAdmin``):

- the patient's clinical page: the summary header, the encounters, the progress chart;
- the encounter page: its sections, diagnoses, vitals and scales, signing, corrections,
  inactivation, attachments; autosave of drafts (``records/encounter.js``, a static file:
  the staff pages' CSP allows no inline script);
- emergency access ("break the glass") and attachment downloads.

Each view finds the patient in the request's clinic (404 elsewhere), asks
``access.record_access`` what the user may see, and audits every read of clinical content.
Writes go through ``services``; the sign, correct and inactivate POSTs need a fresh
re-authentication (``clinic.accounts.sudo``)."""

from __future__ import annotations

import functools

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import (
    FileResponse,
    Http404,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinic.accounts.sudo import reauth_is_fresh, reauth_redirect
from clinic.kernel.errors import ApplicationError
from clinic.kernel.tenancy import current_clinic
from clinic.models import Patient

from . import charts, cid10, selectors, services
from . import encounter_templates as templates
from .access import Level, entry_visible, record_access
from .audit import audit_record_read
from .models import Attachment, Cid10Code, Encounter, Entry, EntryKind
from .sections import extra_sections, initial_for, render_content
from .vitals import VITALS

K = EntryKind

#: Narrative sections, in the order CFM 1.638 art. 5 lists them.
TEXT_SECTIONS = (
    K.CHIEF_COMPLAINT,
    K.HPI,
    K.ANAMNESIS,
    K.PHYSICAL_EXAM,
    K.EXAMS_REQUESTED,
    K.EXAM_RESULTS,
    K.PLAN,
    K.PROTOCOLS,
    K.EVOLUTION,
)


class Certainty:
    HYPOTHESIS = "hypothesis"
    DEFINITIVE = "definitive"
    CHOICES = (
        (HYPOTHESIS, gettext_lazy("diagnostic hypothesis")),
        (DEFINITIVE, gettext_lazy("definitive diagnosis")),
    )


def _reauth_to_post(view):
    """Signing, correcting and inactivating need a fresh re-authentication (password and
    second factor, ``clinic.accounts.sudo``)."""

    @functools.wraps(view)
    def wrapper(model_admin, request, *args, **kwargs):
        if request.method == "POST" and not reauth_is_fresh(request):
            return reauth_redirect(request)
        return view(model_admin, request, *args, **kwargs)

    return wrapper


# --- Helpers --------------------------------------------------------------------------------
def _patient_or_404(request, patient_id: int) -> Patient:
    clinic = current_clinic(request)
    if clinic is None:
        raise Http404
    return get_object_or_404(Patient.objects.for_clinic(clinic), pk=patient_id)


def _access(request, patient):
    access = record_access(user=request.user, clinic=current_clinic(request), patient=patient)
    if access.level == Level.NONE:
        raise Http404
    return access


def _encounter_for_content(request, encounter_id: int):
    """The encounter (of the request's clinic) and the access, when the user reads content."""
    clinic = current_clinic(request)
    if clinic is None:
        raise Http404
    encounter = get_object_or_404(
        Encounter.objects.for_clinic(clinic).select_related("patient", "professional"),
        pk=encounter_id,
    )
    access = _access(request, encounter.patient)
    if not access.reads_content:
        raise PermissionDenied(_("You may see that this encounter exists, not its content."))
    return encounter, access


def _context(model_admin, request, **extra) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        **extra,
    }


def _url(name: str, *args) -> str:
    return reverse(f"admin:records_encounter_{name}", args=args)


def _errors_to_messages(request, error: ApplicationError) -> None:
    messages.error(request, error.message)
    for field_messages in error.fields.values():
        for message in field_messages:
            messages.error(request, message)


# --- The patient's clinical page ------------------------------------------------------------
def patient_record_view(model_admin, request, object_id: int):
    patient = _patient_or_404(request, object_id)
    access = _access(request, patient)
    encounters = list(selectors.patient_encounters(patient=patient))
    context = _context(
        model_admin,
        request,
        title=_("Clinical record"),
        patient=patient,
        access=access,
        encounters=encounters,
        can_start=access.professional is not None,
        reads_content=access.reads_content,
        may_break_glass=access.level == Level.BREAK_GLASS,
    )
    if access.reads_content:
        context["summary"] = selectors.patient_summary(
            patient=patient,
            user=request.user,
            registration_missing=services.registration_missing(patient),
        )
        context["chart"] = _progress_chart(patient)
        audit_record_read(
            request=request, patient=patient, obj=patient, page="clinical_record", via=access.via
        )
    return TemplateResponse(request, "records/patient_record.html", context)


def _progress_chart(patient) -> str:
    """The wellness scales and the main vitals over time (server-side SVG, ``charts``)."""
    rows = selectors.progress_rows(patient=patient)
    if not rows[K.SCALES] and not rows[K.VITALS]:
        return ""
    parts = []
    if rows[K.SCALES]:
        parts.append(charts.wellness_chart(rows[K.SCALES]))
    keys = ["systolic", "diastolic", "heart_rate", "weight"]
    vitals_series = charts.series_from(
        rows[K.VITALS],
        keys,
        {k: VITALS[k].label for k in keys},
        {k: VITALS[k].unit for k in keys},
    )
    if vitals_series:
        parts.append(
            charts.line_chart(vitals_series, title=_("Vital signs"), chart_id="vitals-chart")
        )
    return format_html_join("", "{}", ((part,) for part in parts))


def walk_in_view(model_admin, request, object_id: int):
    """Start an encounter without an appointment (a walk-in, a phone consultation)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    patient = _patient_or_404(request, object_id)
    access = _access(request, patient)
    if access.professional is None:
        raise PermissionDenied
    encounter = services.open_encounter(
        clinic=current_clinic(request),
        patient=patient,
        professional=access.professional,
        by=request.user,
    )
    return HttpResponseRedirect(_url("record", encounter.pk))


class BreakGlassForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why do you need this record now?"),
        widget=forms.Textarea(attrs={"rows": 3}),
        min_length=10,
        max_length=2000,
    )


def break_glass_view(model_admin, request, object_id: int):
    patient = _patient_or_404(request, object_id)
    access = _access(request, patient)
    if access.level != Level.BREAK_GLASS:
        raise PermissionDenied
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.break_glass(
            clinic=current_clinic(request),
            patient=patient,
            user=request.user,
            reason=form.cleaned_data["reason"],
        )
        messages.warning(
            request,
            _("Emergency access recorded; the clinical director has been told."),
        )
        return HttpResponseRedirect(_url("patient", patient.pk))
    return TemplateResponse(
        request,
        "records/break_glass.html",
        _context(model_admin, request, title=_("Emergency access"), patient=patient, form=form),
    )


# --- The encounter page ---------------------------------------------------------------------
class EncounterForm(forms.Form):
    """The author's sections of a draft encounter. Every field is optional: an empty one
    clears its draft; what CFM 1.638 requires is checked when signing."""

    def __init__(
        self,
        *args,
        encounter: Encounter,
        template_choices: dict | None = None,
        template_answers: dict | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.encounter = encounter
        for kind in TEXT_SECTIONS:
            self.fields[kind] = forms.CharField(
                label=K(kind).label.capitalize(),
                required=False,
                max_length=20000,
                widget=forms.Textarea(attrs={"rows": 3}),
            )
        self.fields["confidential"] = forms.BooleanField(
            label=_("Confidential evolution note (visible to you only)"), required=False
        )
        self.fields["cid_principal"] = forms.CharField(
            label=_("Principal diagnosis (CID-10)"),
            required=False,
            max_length=6,
            widget=forms.TextInput(attrs={"list": "cid-options", "autocomplete": "off"}),
        )
        self.fields["cid_secondary"] = forms.CharField(
            label=_("Secondary diagnoses (CID-10, separated by commas)"),
            required=False,
            max_length=200,
        )
        self.fields["cid_certainty"] = forms.ChoiceField(
            label=_("Certainty"),
            choices=Certainty.CHOICES,
            initial=Certainty.HYPOTHESIS,
            required=False,
        )
        self.extra_kinds = extra_sections(self, encounter)
        templates.add_fields(self, template_choices or {}, template_answers or {})

    def _codes(self, raw: str, field: str) -> list[Cid10Code]:
        wanted = [c.strip().upper() for c in raw.replace(";", ",").split(",") if c.strip()]
        found = {
            code.compact: code
            for code in Cid10Code.objects.filter(compact__in=[c.replace(".", "") for c in wanted])
        }
        unknown = [c for c in wanted if c.replace(".", "") not in found]
        if unknown:
            raise forms.ValidationError(
                _("Unknown CID-10 code: %(codes)s") % {"codes": ", ".join(unknown)}
            )
        return [found[c.replace(".", "")] for c in wanted]

    def clean_cid_principal(self):
        codes = self._codes(self.cleaned_data["cid_principal"], "cid_principal")
        if len(codes) > 1:
            raise forms.ValidationError(_("One principal diagnosis only."))
        return codes[0] if codes else None

    def clean_cid_secondary(self):
        return self._codes(self.cleaned_data["cid_secondary"], "cid_secondary")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("cid_secondary") and not cleaned.get("cid_principal"):
            self.add_error("cid_principal", _("Name the principal diagnosis first."))
        for section in self.extra_kinds:
            section.clean(self)
        return cleaned

    def _template_group(self, kind: str) -> dict:
        choice = self.template_choices.get(kind) or templates.Choice(kind=kind)
        items = [
            {"heading": value} if item == "heading" else {"field": self[value]}
            for item, value in self.template_layout.get(kind, [])
        ]
        title = _("Anamnesis form") if kind == K.ANAMNESIS else _("Evolution form")
        return {
            "title": title,
            "items": items,
            "choice": choice,
            "picker": templates.picker_field(kind),
            "version_field": templates.version_field(kind),
        }

    def groups(self) -> list[dict]:
        """The fields in the order a consultation goes, each group under its heading; the
        template groups carry their picker and the chosen version."""

        def group(title, fields):
            return {"title": title, "items": [{"field": f} for f in fields]}

        groups = [
            group(_("History"), [self[k] for k in (K.CHIEF_COMPLAINT, K.HPI, K.ANAMNESIS)]),
            self._template_group(K.ANAMNESIS),
            group(_("Examination"), [self[K.PHYSICAL_EXAM]]),
        ]
        groups += [
            group(section.title, [self[name] for name in section.field_names(self)])
            for section in self.extra_kinds
        ]
        groups += [
            group(_("Exams"), [self[K.EXAMS_REQUESTED], self[K.EXAM_RESULTS]]),
            group(
                _("Diagnoses (CID-10)"),
                [self["cid_principal"], self["cid_secondary"], self["cid_certainty"]],
            ),
            group(_("Plan"), [self[K.PLAN], self[K.PROTOCOLS]]),
            self._template_group(K.EVOLUTION),
            group(_("Evolution"), [self[K.EVOLUTION], self["confidential"]]),
        ]
        return groups

    def sex_warnings(self) -> list[str]:
        """A code restricted to the other sex than the patient's: a warning, not a refusal
        (the registration may be the wrong one)."""
        if not hasattr(self, "cleaned_data"):
            return []
        codes = [
            self.cleaned_data.get("cid_principal"),
            *self.cleaned_data.get("cid_secondary", []),
        ]
        sex = self.encounter.patient.sex
        return [w for w in (cid10.sex_conflict(c, sex) for c in codes if c is not None) if w]

    def diagnosis_content(self) -> dict | None:
        principal = self.cleaned_data.get("cid_principal")
        if principal is None:
            return None
        certainty = self.cleaned_data.get("cid_certainty") or Certainty.HYPOTHESIS
        items = [principal, *self.cleaned_data.get("cid_secondary", [])]
        return {
            "items": [
                {
                    "code": code.code,
                    "description": code.description,
                    "principal": index == 0,
                    "certainty": certainty,
                }
                for index, code in enumerate(items)
            ]
        }


def _drafts(encounter: Encounter, user) -> list[Entry]:
    return list(
        Entry.objects.filter(encounter=encounter, author=user, status="draft").select_related(
            "template_version"
        )
    )


def _initial(drafts: list[Entry]) -> dict:
    initial = {}
    for draft in drafts:
        if draft.kind in TEXT_SECTIONS:
            initial[draft.kind] = draft.content.get("text", "")
            if draft.kind == K.EVOLUTION:
                initial["confidential"] = draft.confidential
        elif draft.kind == K.DIAGNOSIS:
            items = draft.content.get("items", [])
            principal = [i["code"] for i in items if i.get("principal")]
            initial["cid_principal"] = principal[0] if principal else ""
            initial["cid_secondary"] = ", ".join(i["code"] for i in items if not i.get("principal"))
            if items:
                initial["cid_certainty"] = items[0].get("certainty", Certainty.HYPOTHESIS)
        else:
            initial.update(initial_for(draft.kind, draft.content))
    return initial


def _save_drafts(form: EncounterForm, encounter: Encounter, user) -> None:
    """Each filled section becomes (or updates) the author's draft; an emptied one goes."""
    data = form.cleaned_data
    with transaction.atomic():
        for kind in TEXT_SECTIONS:
            text = (data.get(kind) or "").strip()
            content = {"text": text} if text else {}
            answers = templates.answers(form, kind) if kind in templates.KINDS else {}
            if answers:
                # A template's answers and the free text share the section's entry.
                content["answers"] = answers
            if content:
                services.entry_save_draft(
                    encounter=encounter,
                    kind=kind,
                    content=content,
                    by=user,
                    confidential=kind == K.EVOLUTION and bool(data.get("confidential")),
                    template_version=(form.template_choices[kind].version if answers else None),
                )
            else:
                services.entry_discard_draft(encounter=encounter, kind=kind, by=user)
        diagnosis = form.diagnosis_content()
        if diagnosis:
            services.entry_save_draft(
                encounter=encounter, kind=K.DIAGNOSIS, content=diagnosis, by=user
            )
        else:
            services.entry_discard_draft(encounter=encounter, kind=K.DIAGNOSIS, by=user)
        for section in form.extra_kinds:
            content, template_version = section.content(data)
            if content:
                services.entry_save_draft(
                    encounter=encounter,
                    kind=section.kind,
                    content=content,
                    by=user,
                    template_version=template_version,
                )
            else:
                services.entry_discard_draft(encounter=encounter, kind=section.kind, by=user)


def _entry_rows(encounter: Encounter, user) -> list[dict]:
    """Every entry of the encounter as the page shows it: the current version, with its
    earlier versions (struck through when corrected) and its inactivation."""
    rows = []
    for entry in selectors.encounter_entries(encounter=encounter):
        visible = entry_visible(entry, user)
        inactivation = (
            getattr(entry, "inactivation", None) if hasattr(entry, "inactivation") else None
        )
        try:
            corrected_by = entry.superseded_by
        except Entry.DoesNotExist:
            corrected_by = None
        rows.append(
            {
                "entry": entry,
                "visible": visible,
                "rendered": render_content(entry) if visible else None,
                "inactivation": inactivation,
                "corrected": corrected_by is not None,
                "can_amend": (
                    entry.is_finalized
                    and entry.author_id == user.pk
                    and corrected_by is None
                    and inactivation is None
                ),
            }
        )
    return rows


def encounter_view(model_admin, request, object_id: int):
    encounter, access = _encounter_for_content(request, object_id)
    editable = not encounter.is_finalized and encounter.professional.user_id == request.user.pk
    form = None
    if editable:
        if request.method == "POST":
            form = EncounterForm(
                request.POST,
                encounter=encounter,
                template_choices=templates.posted(encounter=encounter, data=request.POST),
            )
            if form.is_valid():
                try:
                    _save_drafts(form, encounter, request.user)
                except ApplicationError as error:
                    _errors_to_messages(request, error)
                else:
                    for warning in form.sex_warnings():
                        messages.warning(request, warning)
                    messages.success(request, _("Draft saved."))
                    return HttpResponseRedirect(_url("record", encounter.pk))
        else:
            drafts = _drafts(encounter, request.user)
            form = EncounterForm(
                initial=_initial(drafts),
                encounter=encounter,
                template_choices=templates.choose(
                    encounter=encounter,
                    user=request.user,
                    query=request.GET,
                    drafts={d.kind: d for d in drafts},
                ),
                template_answers={d.kind: d.content.get("answers") for d in drafts},
            )
    elif request.method == "POST":
        raise PermissionDenied
    patient = encounter.patient
    summary = selectors.patient_summary(
        patient=patient,
        user=request.user,
        registration_missing=services.registration_missing(patient),
    )
    audit_record_read(
        request=request, patient=patient, obj=encounter, page="encounter", via=access.via
    )
    return TemplateResponse(
        request,
        "records/encounter.html",
        _context(
            model_admin,
            request,
            title=_("Encounter"),
            encounter=encounter,
            patient=patient,
            summary=summary,
            form=form,
            editable=editable,
            missing=services.signing_missing(encounter) if editable else [],
            rows=_entry_rows(encounter, request.user),
            attachments=list(selectors.encounter_attachments(encounter=encounter)),
            autosave_url=_url("autosave", encounter.pk),
        ),
    )


def autosave_view(model_admin, request, object_id: int):
    """POST of the encounter form by ``records/encounter.js`` every few seconds while the
    author types: valid sections are saved as drafts; the answer lists the field errors."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    encounter, _unused = _encounter_for_content(request, object_id)
    if encounter.is_finalized or encounter.professional.user_id != request.user.pk:
        return JsonResponse({"saved": False, "error": _("This encounter is locked.")}, status=409)
    form = EncounterForm(
        request.POST,
        encounter=encounter,
        template_choices=templates.posted(encounter=encounter, data=request.POST),
    )
    if not form.is_valid():
        return JsonResponse({"saved": False, "errors": form.errors}, status=422)
    try:
        _save_drafts(form, encounter, request.user)
    except ApplicationError as error:
        return JsonResponse({"saved": False, "error": str(error.message)}, status=409)
    at = timezone.localtime().strftime("%H:%M:%S")
    message = " ".join([_("Draft saved at %(at)s.") % {"at": at}, *form.sex_warnings()])
    return JsonResponse({"saved": True, "message": message})


@_reauth_to_post
def sign_view(model_admin, request, object_id: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    encounter, _unused = _encounter_for_content(request, object_id)
    try:
        services.encounter_finalize(encounter=encounter, by=request.user)
    except ApplicationError as error:
        _errors_to_messages(request, error)
    else:
        messages.success(request, _("Encounter signed. It can no longer be changed."))
    return HttpResponseRedirect(_url("record", encounter.pk))


class CorrectionForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("Corrected text"), widget=forms.Textarea(attrs={"rows": 6})
    )
    justification = forms.CharField(
        label=gettext_lazy("Justification of the correction"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
    )


def _entry_for_author(request, entry_id: int) -> Entry:
    clinic = current_clinic(request)
    if clinic is None:
        raise Http404
    entry = get_object_or_404(
        Entry.objects.for_clinic(clinic).select_related("encounter__patient"), pk=entry_id
    )
    _encounter_for_content(request, entry.encounter_id)
    if entry.author_id != request.user.pk:
        raise PermissionDenied(_("Only the author of an entry corrects or inactivates it."))
    return entry


@_reauth_to_post
def correct_view(model_admin, request, object_id: int):
    entry = _entry_for_author(request, object_id)
    text_entry = "text" in entry.content and "answers" not in entry.content
    form = CorrectionForm(
        request.POST or None,
        initial={"text": entry.content.get("text", "")} if text_entry else None,
    )
    if not text_entry:
        form.fields["text"].help_text = _(
            "Write the corrected values as text; the previous version stays visible."
        )
    if request.method == "POST" and form.is_valid():
        content = {"text": form.cleaned_data["text"]}
        try:
            services.entry_correct(
                entry=entry,
                content=content,
                justification=form.cleaned_data["justification"],
                by=request.user,
            )
        except ApplicationError as error:
            _errors_to_messages(request, error)
        else:
            messages.success(request, _("Correction signed; the previous version stays visible."))
            return HttpResponseRedirect(_url("record", entry.encounter_id))
    return TemplateResponse(
        request,
        "records/correct.html",
        _context(model_admin, request, title=_("Correct an entry"), entry=entry, form=form),
    )


@_reauth_to_post
def inactivate_view(model_admin, request, object_id: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    entry = _entry_for_author(request, object_id)
    try:
        services.entry_inactivate(
            entry=entry, justification=request.POST.get("justification", ""), by=request.user
        )
    except ApplicationError as error:
        _errors_to_messages(request, error)
    else:
        messages.success(request, _("Entry inactivated; it stays in the record, struck through."))
    return HttpResponseRedirect(_url("record", entry.encounter_id))


class AttachmentForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("File (PDF, JPEG, PNG or WebP)"))
    description = forms.CharField(label=gettext_lazy("Description"), required=False, max_length=200)


def attach_view(model_admin, request, object_id: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    encounter, _unused = _encounter_for_content(request, object_id)
    form = AttachmentForm(request.POST, request.FILES)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    else:
        try:
            services.attachment_add(
                encounter=encounter,
                upload=form.cleaned_data["file"],
                by=request.user,
                description=form.cleaned_data["description"],
            )
        except ApplicationError as error:
            _errors_to_messages(request, error)
        else:
            messages.success(request, _("File attached."))
    return HttpResponseRedirect(_url("record", encounter.pk))


def attachment_view(model_admin, request, object_id: int):
    """The only way to an attachment's bytes: access checked, download audited."""
    clinic = current_clinic(request)
    if clinic is None:
        raise Http404
    attachment = get_object_or_404(Attachment.objects.for_clinic(clinic), pk=object_id)
    encounter, access = _encounter_for_content(request, attachment.encounter_id)
    audit_record_read(
        request=request,
        patient=encounter.patient,
        obj=attachment,
        page="attachment",
        via=access.via,
        export=True,
    )
    response = FileResponse(
        attachment.file.open("rb"),
        content_type=attachment.content_type,
        as_attachment=attachment.content_type == "application/pdf",
        filename=f"anexo-{attachment.pk}",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
