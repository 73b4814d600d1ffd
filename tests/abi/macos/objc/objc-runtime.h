#pragma once
typedef struct objc_object *id;
