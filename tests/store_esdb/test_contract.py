"""The store contract suite of ``tests/store`` (the one memory, SQLite and PostgreSQL
pass), run on EventStoreDB: imported here so that this folder's ``backend``/``store``
fixtures (the fake, and a real server when configured) are the ones it gets.

Left out: the read-model store contract (not about the event store) and the killed-process
test, whose subprocess reopens stores by kind (``test_crash.py`` here does it for a real
server; an in-process fake does not outlive its process).
"""

from __future__ import annotations

from tests.store.test_event_store import (  # noqa: F401
    test_empty_store,
    test_event_carries_context_metadata_and_deterministic_id,
    test_get_at_a_version_time_travels,
    test_missing_aggregate_is_not_found,
    test_next_batch_times_out_empty,
    test_read_all_filters_by_topic,
    test_read_all_is_globally_ordered_across_streams,
    test_read_all_pages_by_position,
    test_read_stream_returns_one_stream_in_version_order,
    test_save_returns_position_of_last_event_and_get_rebuilds_the_aggregate,
    test_saving_two_aggregates_is_atomic,
    test_stale_version_raises_concurrency_conflict_and_records_nothing,
    test_subscription_delivers_existing_then_new_events_after_a_position,
    test_subscription_iterates_and_stops,
)
from tests.store.test_follower import (  # noqa: F401
    test_background_follower_retries_a_failing_handler_until_it_succeeds,
    test_checkpoint_stops_before_a_failing_event_and_resumes_from_it,
    test_handles_every_event_in_order_and_stores_the_checkpoint,
    test_stopping_while_an_event_keeps_failing_keeps_it_for_next_time,
    test_topic_filter_only_delivers_matching_events,
)
from tests.store.test_projections import (  # noqa: F401
    test_background_runner_wakes_waiters_when_position_commits,
    test_catch_up_projects_every_event_once_with_its_checkpoint,
    test_changed_version_is_rebuilt_at_start,
    test_event_whose_handler_fails_is_parked_and_the_rest_goes_on,
    test_rebuild_equals_incremental_result,
    test_rebuild_next_to_a_running_runner_leaves_no_hole,
    test_runner_whose_checkpoint_was_reset_elsewhere_replays_from_it,
    test_two_runners_on_the_same_read_models_never_duplicate,
)
from tests.store.test_upcasting import (  # noqa: F401
    test_v1_event_loads_as_v2_after_the_class_changes,
    v1_classes,
)
