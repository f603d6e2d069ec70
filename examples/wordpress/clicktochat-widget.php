<?php
/**
 * Plugin Name: clicktochat widget
 * Description: Shows your clicktochat chat button on every page of the site.
 * Version: 1.0
 *
 * Use it either way:
 *  - as a plugin: copy this file to wp-content/plugins/ and activate "clicktochat widget"
 *    under Plugins; or
 *  - paste everything below this comment into your theme's functions.php.
 * Then set the two values below. (A header-and-footer plugin works too: paste the line
 * that `clicktochat widget create` printed into its footer box.)
 */

const CLICKTOCHAT_HOST = 'https://chat.example.com'; // your clicktochat address, no trailing slash
const CLICKTOCHAT_WIDGET = 'shop';                   // the id from `clicktochat widget create`

add_action('wp_enqueue_scripts', function () {
    // In the footer and async (WordPress 6.3+): it never delays the page.
    wp_enqueue_script('clicktochat-widget', CLICKTOCHAT_HOST . '/widget.js', array(), null, array(
        'in_footer' => true,
        'strategy'  => 'async',
    ));
});

// WordPress writes <script src="..." id="clicktochat-widget-js">; the widget reads its id from data-widget.
add_filter('script_loader_tag', function ($tag, $handle) {
    if ($handle !== 'clicktochat-widget') {
        return $tag;
    }
    return str_replace(' src=', ' data-widget="' . esc_attr(CLICKTOCHAT_WIDGET) . '" src=', $tag);
}, 10, 2);
