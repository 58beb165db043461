// Bundles @event-calendar/core (with Svelte, its one dependency) into one script that
// defines window.EventCalendar = {create, destroy}: the plugins the receptionist's
// calendar uses (resource time grid, time grid, list, interaction) and day grid.
import {createCalendar, destroyCalendar, DayGrid, Interaction, List, ResourceTimeGrid, TimeGrid} from '@event-calendar/core';

window.EventCalendar = {
    create(target, options) {
        return createCalendar(target, [DayGrid, Interaction, List, ResourceTimeGrid, TimeGrid], options);
    },
    destroy: destroyCalendar,
};
