"""Reliability tests: bad input, faults and attacks, each reproduced as a user (or an attacker) meets it.

Issue 23 ("Nothing lost, nothing run, nothing rerun for no reason"), item by item, and the tests
that hold it (each failed on the code before the fix):

==== ======================================== ==================================================================
item what                                     tests
==== ======================================== ==================================================================
1    export never deletes a user's files      tests/test_export.py: test_a_users_folder_with_a_preprocessing_json_
                                              is_refused_before_the_export, test_a_folder_of_lookalike_bundle_
                                              files_is_refused, test_files_added_to_a_bundle_during_the_export_
                                              are_kept
2    make runs no code from a config          test_protects.py: test_a_config_with_shell_code_or_no_experiment_
                                              is_refused, test_make_clean_and_report_run_no_code_from_a_config,
                                              test_clean_removes_one_experiments_folder_only, test_clean_refuses_
                                              a_folder_holding_what_the_workflow_does_not_write, test_clean_never_
                                              removes_the_current_folder, test_makefile_lets_the_shell_read_no_
                                              config_text
3    a damaged store is found and rebuilt     test_stores_and_runs.py: test_a_store_with_one_sample_overwritten_
                                              is_found_and_moved_aside, test_a_truncated_store_is_moved_aside,
                                              test_a_stage_reading_a_changed_store_stops_and_names_it;
                                              test_inputs_trust.py: test_a_damaged_store_is_found_and_rebuilt_in_
                                              two_runs (truncated, one sample overwritten)
4    missing outputs are made again           tests/workflow/test_workflow.py: test_a_missing_checkpoint_is_made_
                                              again
5    (channels, time) arrays                  test_inputs_clear.py: test_a_channels_first_npy_is_refused_before_
                                              any_job, test_a_channels_first_npy_is_refused_by_ingest
6    unchanged content reruns nothing         test_inputs_trust.py: test_touching_every_data_file_reruns_nothing,
                                              test_an_edited_or_replaced_file_reruns_ingest_and_what_follows;
                                              tests/io/test_filehash.py (the stat cache)
7    two runs on one results folder           test_stores_and_runs.py: test_atomic_path_leaves_a_live_writers_
                                              temporary_file, test_a_second_run_is_refused_naming_the_first,
                                              test_a_lock_of_another_host_is_never_taken_over, test_a_dead_runs_
                                              lock_is_taken_over_and_freed; tests/workflow/test_workflow.py:
                                              test_a_second_run_on_the_same_results_is_refused
8    predict --fusion is the report's fusion  tests/test_predict.py: test_predict_fusion_with_top_equals_the_fuse_
                                              stage, test_predict_fusion_with_select_equals_the_fuse_stage
-    should hold: byte-order mark, empty      test_inputs_clear.py (one test each: BOM, no rows or no label, lr:
     sheet, lr: 1e-3, sample rates, long      1e-3, audio resampled to sample_rate, long recordings warned before
     recordings, n_mels, windows/wavelets,    any job, too many Mel bands, unknown window or wavelet, data.labels
     data.labels, directories                 absent from the sheet, a directory in the sheet)
-    should hold: labels no font draws        tests/test_report.py: test_labels_no_font_here_draws_are_shown_by_
                                              index_and_listed, test_a_label_the_default_font_lacks_is_drawn_by_
                                              a_fallback_font
-    should hold: error lines, Ctrl-C         test_protects.py: test_error_lines_are_one_line_each_ending_with_
                                              a_line_break, test_ctrl_c_leaves_one_line_and_exit_status_130,
                                              test_ctrl_c_in_a_fold_leaves_one_line_in_the_folds_log
==== ======================================== ==================================================================

Earlier issues' items are listed in the docstrings of test_inputs_trust.py and test_bad_input.py.
"""
