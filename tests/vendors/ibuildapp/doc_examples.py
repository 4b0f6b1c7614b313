"""Example bodies copied verbatim from the iBuildApp Timesheets API document."""

LOGIN_REQUEST = {"email": "test@test.com", "password": "12345678"}

LOGIN_RESPONSE = {
    "status": "SUCCESS",
    "message": "Successfully authorized.",
    "token": "$2y$10$UP8aZvonwuqnaSBrdpiB4eq5NI3VHZtzcFhC73o0Slf/6uSBU3.je",
}

UNAUTHORIZED_401 = {"status": "ERROR", "message": "Auth token not specified or incorrect.", "error_code": 9}
PROJECT_NOT_FOUND_404 = {"status": "ERROR", "message": "Project not found.", "error_code": 5}

TS_SEARCH_REQUEST = {
    "time_entry_ids": [0, 10],
    "user_id": 1,
    "task_id": 1,
    "project_id": 1,
    "payment_status": "pending",
    "keywords": "string",
    "with": ["users", "tasks", "projects"],
}

TS_SEARCH_RESPONSE = {
    "status": "SUCCESS",
    "message": "1 time entries found.",
    "data": {
        "time_entries": [
            {
                "id": 0,
                "user_id": 0,
                "task_id": 0,
                "start_time": 1583905200,
                "end_time": 1583905200,
                "approve_date": 1583905200,
                "breaks": 0,
                "comments": 0,
                "duration": 0,
                "status": "in-progress",
                "payment_status": "pending",
                "start_location": [37.270248, -119.989356],
                "end_location": [37.270248, -119.989356],
            }
        ],
        "users": {
            "0": {
                "id": 0,
                "email": "string",
                "first_name": "string",
                "last_name": "string",
                "hourly_rate": 0,
                "picture": "string",
                "birth_date": "1988-11-22",
            }
        },
        "tasks": {"0": {"id": 0, "name": "string", "project": 0, "duration": 0, "status": "new", "users": [0]}},
        "projects": {
            "0": {
                "id": 0,
                "name": "string",
                "description": "string",
                "client_id": 0,
                "duration_unit": "minutes",
                "status": "new",
                "planned_start_date": 0,
                "actual_start_date": 0,
                "planned_end_date": 0,
                "actual_end_date": 0,
                "estimated_duration": 0,
                "actual_duration": 0,
                "tasks": [0],
            }
        },
    },
    "count": 1,
}

PROJECT_SEARCH_REQUEST = {"name": "test", "limit": 10, "offset": 0, "with": ["tasks", "clients"]}

PROJECT_SEARCH_RESPONSE = {
    "status": "SUCCESS",
    "message": "1 project(s) found.",
    "data": {
        "projects": [
            {
                "id": 0,
                "name": "test project",
                "description": "description",
                "client_id": 11,
                "duration_unit": "minutes",
                "status": "new",
                "planned_start_date": 1565687043,
                "actual_start_date": 1565687043,
                "planned_end_date": 1565687043,
                "actual_end_date": 1565687043,
                "estimated_duration": 20,
                "actual_duration": 10,
                "tasks": [0],
            }
        ],
        "tasks": {"0": {"id": 0, "name": "task name", "duration": 10, "status": "new", "users": [0]}},
        "clients": {"11": {"id": 11, "name": "Client name", "status": "active"}},
    },
    "count": 1,
}

# Time entries as other endpoints show them: the same object in looser shapes.
OTHER_TIME_ENTRY_EXAMPLES = {
    "user/dashboard current_time_entry": {
        "id": 3,
        "user_id": 1,
        "task_id": 1,
        "schedule_id": 1,
        "status": "in-progress",
        "start_time": 1565687043,
        "payment_status": "pending",
        "breaks": 2,
        "comments": "",
        "duration": 10,
    },
    "user/history time_entries[0]": {
        "id": 3,
        "user_id": 1,
        "task_id": 1,
        "status": "done",
        "start_time": "2019-08-13 12:04:03",
    },
    "task/work_history time_entries[0]": {
        "id": 2,
        "user_id": 111,
        "task_id": 3,
        "status": "rejected",
        "start_time": "1566486923",
        "breaks": 0,
        "comments": 0,
        "duration": 6020,
        "approve_date": "1590652717",
        "end_time": "1566492943",
        "start_location": [37.270241, -119.989356],
        "end_location": [37.537152, -118.857427],
    },
    "ts/get time_entry": {
        "id": 0,
        "user_id": 0,
        "task_id": 0,
        "start_time": 1583905200,
        "end_time": 1583905200,
        "duration": 600,
        "approve_date": 1583905200,
        "breaks": 1,
        "status": "in-progress",
    },
    "ts/search_group items[0]": {
        "id": 0,
        "user_id": 0,
        "task_id": 0,
        "start_time": 1583905200,
        "end_time": 1583905200,
        "approve_date": 1583905200,
        "breaks": 0,
        "comments": 0,
        "duration": 0,
        "status": "in-progress",
        "payment_status": "pending",
        "start_location": [37.270248, -119.989356],
        "end_location": [37.270248, -119.989356],
    },
}

# Projects as project/search_group shows them (numeric strings, missing fields).
OTHER_PROJECT_EXAMPLES = {
    "project/search_group items[1][1]": {
        "id": 6,
        "name": "Brand Launch Event",
        "status": "in-progress",
        "updated": "1595578497",
        "planned_end_date": "1597449600",
        "client_id": 142,
        "tasks": [14],
    },
    "project (get) data": {
        "id": 1,
        "name": "project_name",
        "description": "description",
        "client_id": 21,
        "duration_unit": "minutes",
        "status": "done",
        "planned_start_date": 1565687043,
        "actual_start_date": 1565687043,
        "planned_end_date": 1565687043,
        "actual_end_date": 1565687043,
        "estimated_duration": 1000,
        "actual_duration": 1200,
        "tasks": [0, 1, 2],
    },
}
