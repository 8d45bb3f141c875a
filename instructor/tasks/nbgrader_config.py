# nbgrader's course folder is this one: the source versions (solutions, test cells) are in source/<task>/,
# `nbgrader generate_assignment <task>` writes the student version to release/<task>/ (see instructor/README.md).
c = get_config()  # noqa: F821 (nbgrader's config loader defines it)
c.CourseDirectory.root = "."
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
